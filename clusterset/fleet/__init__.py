"""Composition: what runs on the hub (`hub.py`), what runs for each member (`member.py`), and the embedded fleet
(`embedded.py`, `clusterset up`) that runs both in one process."""
