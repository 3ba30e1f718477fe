"""Ploutos' Dagster layer: assets, resources, IO managers, checks, jobs, schedules and sensors."""
