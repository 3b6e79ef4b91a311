"""Segments (spec section 8): saved groups of users, defined by a condition or an uploaded list."""
