"""Leave-one-site-out evaluation of the pretrained model and its report."""
