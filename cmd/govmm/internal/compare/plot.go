package compare

func WritePlot(path string, rep *Report) error { return nil }
