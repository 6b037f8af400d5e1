import NorthstarPluginKit

/// What a storage backend knows of one object: the plugin kit's
/// `StoredObject`, the Swift side of `ns_object_info`, shared by host and
/// plugins.
public typealias ObjectInfo = StoredObject
