"""egoface.eval — metrics, baselines, reports and pictures of recordings and predictions."""
