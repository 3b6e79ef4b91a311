"""Computing tags: triggers, compute jobs on the workers, the detector, the daily schedule."""
