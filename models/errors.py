"""The engine's exception for conditions that make a job impossible to run."""


class EngineError(RuntimeError):
    """A job cannot run as specified: no GPU for ``device: cuda``, a missing or unreadable data
    file, an init that cannot be applied. The message names the field, the value and the fix."""
