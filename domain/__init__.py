"""The domain core: terms every layer shares (draft kinds, periods, errors). Imports
nothing from retrieval, service or evals."""
