"""What the tests share, one concern a module; conftest files hold only fixtures.

- ``waiting``: :func:`eventually`, polling a plain or async predicate.
- ``background``: a coroutine run for the length of a block.
- ``pauses``: a recording ``sleep``, so retry schedules are asserted exactly.
- ``environment``: the environment of a service process a test starts.
- ``documents``: projects, system posts and variables as the product writes them.
- ``communities``: a sandbox community with its tokens and project.
- ``sandbox`` / ``callbacks``: the VK sandbox in-process; a Callback API receiver.
- ``vk_client``: VK clients with test timings.
- ``rabbit``: deleting a test's topology; rabbitmqctl.
- ``metrics``: this process's Prometheus samples.
- ``tracker`` / ``notifier`` / ``ops`` / ``observability`` / ``scenarios``: the pieces
  under test in one suite each (post tracker, update notifier, ops CLI, metrics exports,
  resilience scenarios).
"""
