"""The condition grammar (condition.lark), shipped as package data; planc reads it by name."""
