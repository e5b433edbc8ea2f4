// Package images builds and caches what drivers need on disk to start an
// instance: the container root filesystem (a read-only base shared by every
// instance), and for VMs the guest kernel, initramfs and disk images. Images
// are content-addressed: a directory's name is a hash of what went into it,
// so a changed agent yields a new image and an unchanged one is reused.
package images
