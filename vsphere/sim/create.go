package sim

import (
	"context"
	"fmt"
	"path"
	"sync"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// createVMs creates n VMs in the cluster's root pool, the way vcsim's model
// does (same names, devices and files), but many at once: vcsim spends
// most of a creation waiting for its task, so creating them one after the
// other (the model's way) takes about 20 ms a VM, nearly all of it idle.
func createVMs(m *simulator.Model, n int) error {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("DC0_C0_RP0_VM%d", i)
	}
	return createNamedVMs(m, names, 32)
}

// createNamedVMs creates the VMs named, parallel at a time. One at a time,
// vcsim gives them ids in the order named (a restarted simulator makes its
// VMs again with the ids they had: state.go).
func createNamedVMs(m *simulator.Model, vmNames []string, parallel int) error {
	if len(vmNames) == 0 {
		return nil
	}
	ctx := context.Background()
	c, err := vim25.NewClient(ctx, m.Service)
	if err != nil {
		return err
	}
	finder := find.NewFinder(c)
	dc, err := finder.Datacenter(ctx, "DC0")
	if err != nil {
		return err
	}
	finder.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}
	pool, err := finder.ResourcePool(ctx, "/DC0/host/DC0_C0/Resources")
	if err != nil {
		return err
	}
	names := make(chan string)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range names {
				if err := createVM(ctx, folders.VmFolder, pool, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var ferr error
feed:
	for _, name := range vmNames {
		select {
		case names <- name:
		case ferr = <-errs:
			break feed
		}
	}
	close(names)
	wg.Wait()
	if ferr == nil {
		select {
		case ferr = <-errs:
		default:
		}
	}
	return ferr
}

func createVM(ctx context.Context, folder *object.Folder, pool *object.ResourcePool, name string) error {
	config := types.VirtualMachineConfigSpec{
		Name:    name,
		GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest),
		Files:   &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
	}
	var devices object.VirtualDeviceList
	scsi, _ := devices.CreateSCSIController("pvscsi")
	ide, _ := devices.CreateIDEController()
	cdrom, _ := devices.CreateCdrom(ide.(*types.VirtualIDEController))
	disk := devices.CreateDisk(scsi.(types.BaseVirtualController), types.ManagedObjectReference{}, config.Files.VmPathName+" "+path.Join(name, "disk1.vmdk"))
	disk.CapacityInKB = 10 << 20
	nic := esx.EthernetCard
	devices = append(devices, scsi, cdrom, disk, &nic)
	config.DeviceChange, _ = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	task, err := folder.CreateVM(ctx, config, pool, nil)
	if err != nil {
		return err
	}
	_, err = task.WaitForResult(ctx, nil)
	return err
}
