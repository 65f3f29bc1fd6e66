"""What an order is: the submitted order and its validation, statuses, frames, token amounts."""
