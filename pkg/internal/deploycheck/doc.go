// Package deploycheck holds, in its tests only, the checks of the deployment
// files that need no container engine and no cluster: docker-compose.yml,
// deployments/docker/Dockerfile and the kustomize tree under
// deployments/kubernetes parse; every image they build has a Dockerfile and
// names one of the service binaries; every environment variable they set is
// one that the service receiving it reads, as its configuration structs
// declare it (go-envconfig tags, read by reflection); and the health checks,
// probes, ports, disruption budgets and image pins agree with the services;
// and the alert rules and the dashboard in deployments/monitoring use only
// metrics and labels the workers really register (built as their binaries
// build them, against a real database and broker).
//
// Each check is also run against deliberately broken copies of the files, so
// that a check that cannot fail shows up as a failing test.
package deploycheck
