"""Placement: choosing clusters by their properties (the hub's scheduler) and publishing PlacementDecisions."""
