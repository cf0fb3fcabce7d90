#include "storage/storage_engine.h"

namespace foc {
namespace {

class NoneStorage final : public StorageEngine {
 public:
  std::string Describe() const override { return "none (memory only)"; }
  bool persistent() const override { return false; }
  arrow::Result<std::string> InstanceId() override { return std::string(); }
  arrow::Status Scan(const std::function<void(StoredObjectInfo)>&) override {
    return arrow::Status::OK();
  }
  arrow::Result<Object::Ptr> Read(const ObjectKey& key) override {
    return arrow::Status::KeyError("object ", key.str(), " not found");
  }
  arrow::Result<std::shared_ptr<arrow::Schema>> ReadNativeSchema(
      const ObjectKey& key) override {
    return arrow::Status::KeyError("object ", key.str(), " not found");
  }
  arrow::Status Put(const ObjectKey&, const Object&) override {
    return arrow::Status::OK();
  }
  arrow::Status Append(const ObjectKey&, const Object&) override {
    return arrow::Status::OK();
  }
  arrow::Status Remove(const ObjectKey&) override { return arrow::Status::OK(); }
  arrow::Status RecordFloor(const VersionFloor&) override { return arrow::Status::OK(); }
  arrow::Result<std::vector<VersionFloor>> LoadFloors() override {
    return std::vector<VersionFloor>{};
  }
  StorageUsage Usage() const override { return {}; }
};

}  // namespace

std::unique_ptr<StorageEngine> MakeNoneStorage() {
  return std::make_unique<NoneStorage>();
}

}  // namespace foc
