"""The operators' command line: ``python -m tools.ops …`` (docs/operations.md).

Reads :class:`~shared.settings.Settings` from the environment, as the services do,
and works on the same MongoDB, RabbitMQ and VK. Commands (``--help`` on each):

* ``projects add|list|show`` — :mod:`.projects`
* ``callback setup|status`` — :mod:`.callback` (on :mod:`tools.callback_setup`)
* ``dlq list|replay|drop`` — :mod:`.dlq`; reading a DLQ safely: :mod:`.dlq_reader`;
  one parked message: :mod:`.parked`
* ``posts list|requeue`` — :mod:`.posts`; the requeue rules and write: :mod:`.requeue`

Plumbing: :mod:`.cli` (parsing, exit status), :mod:`.context` (connections of one run),
:mod:`.failures` (expected failures → one line), :mod:`.prompts`, :mod:`.arguments`,
:mod:`.table`, :mod:`.cli_logging`.

Exit status: 0 done, 1 operational failure (one ``error: …`` line on stderr),
2 usage error. Tokens and secrets are never printed: only ``set`` / ``unset``.
"""
