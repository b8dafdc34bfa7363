"""The one exception type users see: its message is printed as a one-line runc-style error."""


class Error(Exception):
    """A failure with a message the user can act on (names the field, object or id)."""


class NotExist(Error):
    """The container id is unknown."""

    def __init__(self, cid):
        super().__init__(f"container {cid} does not exist")
