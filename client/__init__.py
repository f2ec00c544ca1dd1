"""The submit client: creates run rows in the results database, then sends them to the queue.

Used by the CLI and the dashboard; it imports the core (rnnlab), db and the queue config, never worker or dashboard."""
