// Package deploycheck holds, in its tests only, the checks of the deployment
// files that need no container engine and no cluster: docker-compose.yml,
// deployments/docker/Dockerfile and the kustomize tree under
// deployments/kubernetes parse; every image they build has a Dockerfile and
// names one of the service binaries; every environment variable they set is
// one that the service receiving it reads, as its configuration structs
// declare it (go-envconfig tags, read by reflection); and the health checks,
// probes, ports, disruption budgets and image pins agree with the services.
//
// Each check is also run against deliberately broken copies of the files, so
// that a check that cannot fail shows up as a failing test.
package deploycheck
