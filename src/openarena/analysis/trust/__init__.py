"""Trust analyses: the answers to an arena's critics (private variants and selection bias,
drift of an endpoint, cost-vs-score frontier, audits of a vote set, provider transparency,
reproducible snapshots). One file per analysis; all of them call the ratings engine."""
