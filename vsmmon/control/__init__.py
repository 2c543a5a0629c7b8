"""The decisions that act on the fleet, pure: `s3.plan` turns a resource alert into one bounded Celery
remote-control action (and `s3.effective` judges it afterwards); `s5.decide` answers escalations and
system-wide criticals with a `Verdict` on S5's `Standing` (hold S3, protective mode).
"""
