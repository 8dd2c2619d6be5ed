"""Remote commands over MQTT, signed by the provincial operations team.

`envelope` (the signed format, its checks and the signed result), `nonces` (replay memory
kept in the state directory), `device` (the gate's own key, which signs results, and the
province's registry of them), `budget` (how many refusals are answered and logged),
`remote` (deny and trust lists replaced remotely, merged with the config's), `service` (the
daemon's side: a worker thread answering every command) and `cli` (`gate cmd`: the
operator's side). See docs/commands.md. Nothing is imported here on purpose: the policy reads
`remote` without pulling in the daemon.
"""
