"""Multi-Cluster Services (KEP-1645): ServiceExports become ServiceImports and imported EndpointSlices everywhere."""
