"""One router per feature; each is thin: parse, check scope, call a plain function."""
