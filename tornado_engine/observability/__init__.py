"""What operators read: Prometheus metrics and log set-up."""
