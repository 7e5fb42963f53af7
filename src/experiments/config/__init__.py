"""What the user may type: the rule table, added keys, the device, the command line's grammar, UserError."""
