"""Eval suites: `evals/<suite>.yaml` names the tasks a checkpoint is judged on."""
