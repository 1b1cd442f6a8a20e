"""Running one job: prepare (validate what only this host can tell, plan), then the steps of a
run, and putting right what dead runs left behind."""
