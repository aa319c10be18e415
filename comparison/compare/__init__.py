"""``s1ndvi compare``: the methods, their evaluation on the same hidden values of one cube, the report, the field case."""
