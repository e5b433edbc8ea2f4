// Package deploy holds what runs virtbench on many hosts, and its tests:
// the Ansible campaign (deploy/ansible/campaign.yml: one scenario on every
// host of an inventory, each host's run directory fetched into one
// campaign directory for virtbench report) and the Kubernetes manifests
// (deploy/kubernetes: a Job for chosen nodes, a DaemonSet for every node
// of a pool). The campaign is tested on Docker containers standing in for
// hosts; the manifests, with no cluster here, are checked offline.
package deploy
