"""Background work: Postgres holds each job's state; the Celery message is only a doorbell.

leases      claim / renew / complete rows of any table with the lease columns
tables      the generic `jobs` table
jobs        job kinds, `enqueue`, and the task that runs a job under a lease
reaper      requeues or fails work whose lease expired
celery_app  the Celery app, its beat schedule, and the worker / beat entry points
embedded    worker and reaper as threads of the one-process server
"""
