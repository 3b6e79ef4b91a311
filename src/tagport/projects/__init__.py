"""Projects (spec section 8): named scopes over the shared users, identities and tags."""
