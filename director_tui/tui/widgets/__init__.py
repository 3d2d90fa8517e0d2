"""Reusable widgets: modals, the DAG view, the bench chart."""
