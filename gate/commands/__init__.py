"""Remote commands over MQTT, signed by the provincial operations team.

`envelope` (the signed format and the checks), `nonces` (replay memory kept in the state
directory) and `service` (the daemon's side: a worker thread answering every command).
The lists the commands replace are `gate.remote_lists`; the operator's side is
`gate.cli.cmd` (`gate cmd`). Nothing is imported here on purpose.
"""
