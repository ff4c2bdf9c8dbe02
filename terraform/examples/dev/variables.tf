# This example takes no input on purpose: its settings are in main.tf locals.
