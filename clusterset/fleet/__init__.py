"""Composition: the embedded fleet (`clusterset up`) wires the server, the hub controllers and the agents."""
