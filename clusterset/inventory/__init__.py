"""Cluster inventory: registration (join/leave), the member agent's report, and the hub's ClusterProfile manager."""
