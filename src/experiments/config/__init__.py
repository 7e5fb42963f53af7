"""What the user typed and what is allowed: the rule table, added keys, the device, the command line's
grammar and the errors that answer bad input in one line. Torch-free, the layer every other part stands on."""
