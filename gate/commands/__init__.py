"""Remote commands over MQTT, signed by the provincial operations team.

`envelope` (the signed format, its checks and the signed result), `nonces` (replay memory
kept in the state directory), `device` (the gate's own key, which signs results, and the
province's registry of them), `budget` (how many refusals are answered and logged) and
`service` (the daemon's side: a worker thread answering every command). The lists the
commands replace are `gate.remote_lists`; the operator's side is `gate.cli.cmd` (`gate cmd`).
See docs/commands.md. Nothing is imported here on purpose.
"""
