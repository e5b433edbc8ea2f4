// Package drivers defines how virtbench runs instances: the Driver and
// Instance interfaces, a registry of drivers by name, and the errors drivers
// share.
//
// A driver knows how to start, observe and stop instances; it knows nothing
// about repetitions or statistics (package bench does). Each driver lives in
// its own package under drivers/ and registers itself in an init function;
// every driver's tests run the conformance suite in drivers/drivertest.
package drivers
