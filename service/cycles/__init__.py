"""Review cycles: a named period with its rating scale. The room every cycle-scoped feature
(ratings, panels, drafting a cycle, the bias report and, next, the cycle's tasks) reads, and
the one place a cycle is created."""
