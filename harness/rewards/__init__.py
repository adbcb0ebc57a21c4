"""Verifiers shared by data generation, pair labelling, RL rewards and eval scoring.

Keeping them in one place means the Countdown problems a generator emits, the
reward RLOO optimises and the score the eval suite reports can never disagree.
"""
