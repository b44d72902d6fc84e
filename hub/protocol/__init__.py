"""The websocket protocol: frames, commands and per-connection handling."""
