"""Load generation: exact-length prompts, an async streaming client, the closed loop."""
