"""Remote commands over MQTT, signed by the provincial operations team.

`envelope` (the signed format and the checks), `nonces` (replay memory kept in the state
directory), `remote` (deny and trust lists replaced remotely, merged with the config's),
`service` (the daemon's side: a worker thread answering every command) and `cli`
(`gate cmd`: the operator's side). Nothing is imported here on purpose: the policy reads
`remote` without pulling in the daemon.
"""
