"""Policy replay and off-policy evaluation: what a candidate policy would have done."""
