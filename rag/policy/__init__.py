"""The answering policy: what runs next, escalation, the grounding check, calibration."""
