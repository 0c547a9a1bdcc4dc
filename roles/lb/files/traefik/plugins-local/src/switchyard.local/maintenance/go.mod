module switchyard.local/maintenance

go 1.22
