"""The command channel's names, apart from the publisher so that naming them loads no paho."""

from collections.abc import Callable

ANY_COMMAND = "+"
"""Subscribe a handler to every command name (`<root>/cmd/+`)."""

CommandHandler = Callable[[str, bytes], None]
"""Called in the publisher's thread with (command name, payload): hand work off, return fast."""
