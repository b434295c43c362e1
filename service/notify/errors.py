"""How a delivery fails: one error the reminder pass records on the message's row."""

from domain.errors import Unavailable


class DeliveryFailed(Unavailable):
    """A message did not go: the server was down, refused it (4xx/5xx) or timed out.
    `message` names the kind of failure and any status code, never the body, the address
    or the URL. `channel_down`: no later message of this pass will get through the same way
    (connection refused, time-out), so the pass stops trying that destination."""

    def __init__(self, message: str, *, channel_down: bool = False) -> None:
        super().__init__(message)
        self.channel_down = channel_down
