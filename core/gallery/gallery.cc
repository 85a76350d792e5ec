#include "core/gallery/gallery.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "core/gallery/index_factory.h"
#include "core/gallery/receipt_fingerprint.h"
#include "core/gallery/validation.h"

namespace veriface {
namespace {

// Receipts are pruned once per this many writes (and at start-up): often enough to keep the table to a
// day of writes, rarely enough that pruning costs nothing per request.
constexpr int64_t kWritesPerPrune = 1000;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const std::string& NameOrDefault(const std::string& name) {
  static const std::string kDefault = kDefaultGalleryName;
  return name.empty() ? kDefault : name;
}

const char* KindName(WriteReceipt::Kind kind) { return kind == WriteReceipt::Kind::kEnroll ? "Enroll" : "Delete"; }

}  // namespace

Gallery::Gallery(std::unique_ptr<GalleryStore> store, std::string model_id, int64_t embedding_dim, GalleryLimits limits,
                 IndexOptions index)
    : store_(std::move(store)),
      model_id_(std::move(model_id)),
      embedding_dim_(embedding_dim),
      limits_(limits),
      index_options_(std::move(index)) {
  std::random_device device;
  std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
  id_rng_.seed(seed);
}

std::shared_ptr<Collection> Gallery::NewCollection(const GalleryRecord& record) const {
  return std::make_shared<Collection>(record, model_id_, embedding_dim_, limits_, index_options_);
}

absl::StatusOr<std::unique_ptr<Gallery>> Gallery::Open(std::unique_ptr<GalleryStore> store, std::string model_id,
                                                       int64_t embedding_dim, GalleryLimits limits,
                                                       IndexOptions index) {
  if (store == nullptr) return absl::InvalidArgumentError("gallery store is null");
  if (model_id.empty()) return absl::InvalidArgumentError("model id must not be empty");
  if (embedding_dim <= 0 || embedding_dim > 65536) {
    return absl::InvalidArgumentError(absl::StrCat("embedding_dim ", embedding_dim, " is not in [1, 65536]"));
  }
  if (limits.max_templates < 0 || limits.max_templates_per_identity < 1 || limits.max_id_length < 1 ||
      limits.max_metadata_entries < 0 || limits.max_metadata_bytes < 0 || limits.max_page_size < 1 ||
      limits.max_k < 1 || !(limits.norm_tolerance >= 0) || limits.max_galleries < 1 ||
      limits.max_gallery_name_length < static_cast<int64_t>(sizeof(kDefaultGalleryName) - 1) ||
      limits.receipt_ttl_ms < 0) {
    return absl::InvalidArgumentError(
        "gallery limits must be positive (max_templates_per_identity, max_id_length, max_page_size, max_k, "
        "max_galleries >= 1; max_gallery_name_length >= 7; the others >= 0)");
  }
  VF_RETURN_IF_ERROR(CheckIndexOptions(index, embedding_dim));
  VF_ASSIGN_OR_RETURN(StoreSnapshot snapshot, store->Load());
  int64_t templates = 0;
  for (const GalleryContents& g : snapshot.galleries) {
    for (const IdentityState& identity : g.identities) templates += static_cast<int64_t>(identity.templates.size());
  }
  if (!snapshot.model_id.empty() && templates > 0 &&
      (snapshot.model_id != model_id || snapshot.embedding_dim != embedding_dim)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the gallery was built with model '", snapshot.model_id, "' (", snapshot.embedding_dim,
        "-D embeddings) and cannot be used with model '", model_id, "' (", embedding_dim, "-D): its ", templates,
        " templates are not comparable; move the gallery to the new model with veriface-migrate, or use "
        "another gallery store"));
  }
  for (const GalleryContents& g : snapshot.galleries) {
    for (const IdentityState& identity : g.identities) {
      for (const TemplateRecord& t : identity.templates) {
        if (t.model_id != model_id) {
          return absl::FailedPreconditionError(absl::StrCat("gallery template '", t.template_id, "' of identity '",
                                                            t.identity_id, "' was made with model '", t.model_id,
                                                            "', not the serving model '", model_id, "'"));
        }
      }
    }
  }
  VF_RETURN_IF_ERROR(store->BindModel(model_id, embedding_dim));
  const bool has_default = std::any_of(snapshot.galleries.begin(), snapshot.galleries.end(),
                                       [](const GalleryContents& g) { return g.record.name == kDefaultGalleryName; });
  if (!has_default) {
    GalleryContents contents;
    contents.record = GalleryRecord{kDefaultGalleryName, NowUnixMs(), 0};
    const absl::Status created = store->CreateGallery(contents.record);
    // Another replica starting at the same moment may have created it first; the follower brings its record.
    if (!created.ok() && !absl::IsAlreadyExists(created)) return created;
    snapshot.galleries.push_back(std::move(contents));
  }
  std::unique_ptr<Gallery> gallery(
      new Gallery(std::move(store), std::move(model_id), embedding_dim, limits, std::move(index)));
  {
    std::lock_guard<std::mutex> write(gallery->write_mutex_);
    VF_RETURN_IF_ERROR(gallery->LoadAll(std::move(snapshot)));
  }
  // Housekeeping only: a failure here does not stop the gallery from serving.
  (void)gallery->store_->PruneReceipts(NowUnixMs() - limits.receipt_ttl_ms);
  return gallery;
}

absl::Status Gallery::CheckStored(const std::string& gallery, const IdentityState& state) const {
  const std::string& id = state.record.identity_id;
  for (const TemplateRecord& t : state.templates) {
    if (t.identity_id != id) {
      return absl::DataLossError(absl::StrCat("gallery template '", t.template_id, "' in gallery ", Quote(gallery),
                                              " is listed under identity ", Quote(id), " but belongs to ",
                                              Quote(t.identity_id)));
    }
    if (t.model_id != model_id_) {
      // Not damage: the store was moved to another model (veriface-migrate) under this server.
      return absl::FailedPreconditionError(absl::StrCat(
          "gallery template '", t.template_id, "' of identity ", Quote(id), " was made with model '", t.model_id,
          "', not the serving model '", model_id_, "': if the gallery was moved to that model, restart with it"));
    }
    if (static_cast<int64_t>(t.embedding.size()) != embedding_dim_) {
      return absl::DataLossError(absl::StrCat("gallery template '", t.template_id, "' has ", t.embedding.size(),
                                              " values; the gallery's embeddings have ", embedding_dim_));
    }
    for (float v : t.embedding) {
      if (!std::isfinite(v)) {
        return absl::DataLossError(absl::StrCat("gallery template '", t.template_id, "' has a non-finite value"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Collection>> Gallery::Build(GalleryContents contents) const {
  auto collection = NewCollection(contents.record);
  std::set<std::string> template_ids, identity_ids;
  for (IdentityState& state : contents.identities) {
    VF_RETURN_IF_ERROR(CheckStored(contents.record.name, state));
    if (!identity_ids.insert(state.record.identity_id).second) {
      return absl::DataLossError(absl::StrCat("gallery store lists identity ", Quote(state.record.identity_id),
                                              " of gallery ", Quote(contents.record.name), " twice"));
    }
    for (const TemplateRecord& t : state.templates) {
      if (!template_ids.insert(t.template_id).second) {
        return absl::DataLossError(absl::StrCat("gallery template id '", t.template_id, "' appears twice"));
      }
    }
  }
  // An index that cannot be built leaves the exact scan answering: the gallery still serves, and says
  // which index it uses (ListGalleries, Identify), so the failure is not silent.
  (void)collection->Load(std::move(contents.identities));
  return collection;
}

absl::Status Gallery::LoadAll(StoreSnapshot snapshot) {
  std::map<std::string, std::shared_ptr<Collection>> collections;
  for (GalleryContents& contents : snapshot.galleries) {
    const std::string name = contents.record.name;
    VF_ASSIGN_OR_RETURN(std::shared_ptr<Collection> collection, Build(std::move(contents)));
    if (!collections.emplace(name, std::move(collection)).second) {
      return absl::DataLossError(absl::StrCat("gallery store lists gallery ", Quote(name), " twice"));
    }
  }
  std::unique_lock<std::shared_mutex> lock(map_mutex_);
  collections_ = std::move(collections);
  cursor_ = std::move(snapshot.cursor);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Collection>> Gallery::FindMutable(const std::string& name) const {
  const std::string& key = NameOrDefault(name);
  std::shared_lock<std::shared_mutex> lock(map_mutex_);
  auto it = collections_.find(key);
  if (it == collections_.end()) {
    return absl::NotFoundError(absl::StrCat("no gallery ", Quote(key), "; CreateGallery makes one"));
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<const Collection>> Gallery::Find(const std::string& name) const {
  VF_RETURN_IF_ERROR(CheckGalleryName(name, "gallery"));
  VF_ASSIGN_OR_RETURN(std::shared_ptr<Collection> collection, FindMutable(name));
  return std::shared_ptr<const Collection>(std::move(collection));
}

std::vector<std::shared_ptr<Collection>> Gallery::Collections() const {
  std::vector<std::shared_ptr<Collection>> collections;
  std::shared_lock<std::shared_mutex> lock(map_mutex_);
  for (const auto& [name, collection] : collections_) collections.push_back(collection);
  return collections;
}

std::vector<GallerySummary> Gallery::ListGalleries() const {
  std::vector<GallerySummary> out;
  for (const auto& c : Collections()) {
    out.push_back(GallerySummary{c->record(), c->identity_count(), c->template_count(), c->max_templates(),
                                 c->index_info(), c->index_memory_bytes()});
  }
  return out;
}

std::string Gallery::NewTemplateId() {
  // 128 random bits: collisions are not a practical concern, but callers still check.
  return absl::StrFormat("%016x%016x", id_rng_(), id_rng_());
}

absl::StatusOr<std::optional<WriteReceipt>> Gallery::Receipt(const std::string& request_id, WriteReceipt::Kind kind,
                                                             const std::string& fingerprint) {
  VF_ASSIGN_OR_RETURN(std::optional<WriteReceipt> receipt, store_->FindReceipt(request_id));
  if (receipt.has_value() && (receipt->kind != kind || receipt->fingerprint != fingerprint)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "request id ", Quote(request_id), " was already used for another request (", KindName(receipt->kind),
        " of another identity or gallery); a retry must repeat the same request, a new request needs a new id"));
  }
  return receipt;
}

void Gallery::NoteWrite() {
  if (++writes_since_prune_ < kWritesPerPrune) return;
  writes_since_prune_ = 0;
  (void)store_->PruneReceipts(NowUnixMs() - limits_.receipt_ttl_ms);
}

absl::StatusOr<EnrollOutcome> Gallery::Enroll(const EnrollCommand& command) {
  VF_RETURN_IF_ERROR(CheckGalleryName(command.gallery, "gallery"));
  const std::string& name = NameOrDefault(command.gallery);
  VF_RETURN_IF_ERROR(CheckIdentityId(command.identity_id, "identity id"));
  const std::string& identity_id = command.identity_id;
  if (!command.request_id.empty()) {
    VF_RETURN_IF_ERROR(ValidateId("request id", command.request_id, limits_.max_id_length));
  }
  for (const auto& [key, value] : command.metadata) {
    VF_RETURN_IF_ERROR(ValidateId("metadata key", key, limits_.max_id_length));
    VF_RETURN_IF_ERROR(ValidateText(absl::StrCat("metadata value of ", Quote(key)), value, true));
  }
  if (command.embeddings.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("enrolment of ", Quote(identity_id), " has no embeddings"));
  }
  if (!command.face_crops.empty() && command.face_crops.size() != command.embeddings.size()) {
    return absl::InvalidArgumentError(absl::StrCat("enrolment of ", Quote(identity_id), " has ",
                                                   command.embeddings.size(), " embeddings but ",
                                                   command.face_crops.size(), " face crops"));
  }
  std::vector<std::vector<float>> rows;
  rows.reserve(command.embeddings.size());
  for (size_t i = 0; i < command.embeddings.size(); ++i) {
    VF_ASSIGN_OR_RETURN(auto row, NormalizedEmbedding(command.embeddings[i], embedding_dim_, limits_.norm_tolerance,
                                                      absl::StrCat("embedding ", i), model_id_));
    rows.push_back(std::move(row));
  }

  std::lock_guard<std::mutex> write(write_mutex_);
  const std::string fingerprint = ReceiptFingerprint(WriteReceipt::Kind::kEnroll, name, identity_id);
  const auto replay = [&](const WriteReceipt& receipt) {
    return EnrollOutcome{name, receipt.template_ids, /*replayed=*/true};
  };
  if (!command.request_id.empty()) {
    VF_ASSIGN_OR_RETURN(auto receipt, Receipt(command.request_id, WriteReceipt::Kind::kEnroll, fingerprint));
    if (receipt.has_value()) return replay(*receipt);
  }
  VF_ASSIGN_OR_RETURN(std::shared_ptr<Collection> collection, FindMutable(name));
  // The limits are checked against memory here and again inside the store's transaction, where a shared
  // store sees what other replicas added meanwhile.
  const absl::StatusOr<IdentityInfo> existing = collection->Get(identity_id);
  const int64_t have = existing.ok() ? static_cast<int64_t>(existing->template_ids.size()) : 0;
  const int64_t adding = static_cast<int64_t>(rows.size());
  if (have + adding > limits_.max_templates_per_identity) {
    return absl::ResourceExhaustedError(absl::StrCat("identity ", Quote(identity_id), " has ", have,
                                                     " templates; adding ", adding, " would pass the limit of ",
                                                     limits_.max_templates_per_identity, " per identity"));
  }
  const int64_t total = collection->template_count();
  if (total + adding > collection->max_templates()) {
    return absl::ResourceExhaustedError(absl::StrCat("gallery ", Quote(name), " holds ", total, " templates; adding ",
                                                     adding, " would pass its limit of ", collection->max_templates()));
  }
  const int64_t now = NowUnixMs();
  IdentityRecord record;
  if (existing.ok()) {
    record = existing->record;
  } else {
    record.identity_id = identity_id;
    record.created_unix_ms = now;
  }
  record.updated_unix_ms = now;
  for (const auto& [key, value] : command.metadata) record.metadata[key] = value;
  if (static_cast<int64_t>(record.metadata.size()) > limits_.max_metadata_entries) {
    return absl::InvalidArgumentError(absl::StrCat("identity ", Quote(identity_id), " would have ",
                                                   record.metadata.size(), " metadata entries; the limit is ",
                                                   limits_.max_metadata_entries));
  }
  if (MetadataBytes(record.metadata) > limits_.max_metadata_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("identity ", Quote(identity_id), " would have ",
                                                   MetadataBytes(record.metadata), " bytes of metadata; the limit is ",
                                                   limits_.max_metadata_bytes));
  }

  TemplateWrite w;
  w.gallery = name;
  w.identity = record;
  w.identity.metadata = command.metadata;  // the store merges it into what it holds
  w.max_templates_per_identity = limits_.max_templates_per_identity;
  w.max_gallery_templates = collection->max_templates();
  std::vector<std::string> ids;
  for (std::vector<float>& row : rows) {
    std::string id;
    do {
      id = NewTemplateId();
    } while (collection->HasTemplate(id) || std::find(ids.begin(), ids.end(), id) != ids.end());
    ids.push_back(id);
    TemplateRecord t{id, identity_id, model_id_, std::move(row), now, {}, false};
    if (!command.face_crops.empty()) {
      t.face_crop = command.face_crops[ids.size() - 1];
      t.has_face_crop = !t.face_crop.jpeg.empty();
    }
    w.templates.push_back(std::move(t));
  }
  w.request_id = command.request_id;
  w.receipt = WriteReceipt{WriteReceipt::Kind::kEnroll, fingerprint, ids, 0, now};

  // Durable first: if the commit fails, memory is untouched and the caller sees the error.
  absl::StatusOr<IdentityState> committed = store_->AddTemplates(w);
  if (absl::IsAlreadyExists(committed.status()) && !command.request_id.empty()) {
    // The same request committed on another replica while this one was embedding.
    VF_ASSIGN_OR_RETURN(auto receipt, Receipt(command.request_id, WriteReceipt::Kind::kEnroll, fingerprint));
    if (receipt.has_value()) return replay(*receipt);
  }
  if (!committed.ok()) return committed.status();
  VF_RETURN_IF_ERROR(CheckStored(name, *committed));
  // Memory now holds the commit; an index that failed to take it was rebuilt (or the exact scan answers).
  (void)collection->Put(*std::move(committed));
  NoteWrite();
  return EnrollOutcome{name, std::move(ids), false};
}

absl::StatusOr<DeleteOutcome> Gallery::Delete(const std::string& gallery, const std::string& identity_id,
                                              const std::string& request_id) {
  VF_RETURN_IF_ERROR(CheckGalleryName(gallery, "gallery"));
  const std::string& name = NameOrDefault(gallery);
  VF_RETURN_IF_ERROR(CheckIdentityId(identity_id, "identity id"));
  if (!request_id.empty()) VF_RETURN_IF_ERROR(ValidateId("request id", request_id, limits_.max_id_length));

  std::lock_guard<std::mutex> write(write_mutex_);
  const std::string fingerprint = ReceiptFingerprint(WriteReceipt::Kind::kDelete, name, identity_id);
  const auto replay = [&](const WriteReceipt& receipt) {
    return DeleteOutcome{name, receipt.templates_deleted, /*replayed=*/true};
  };
  if (!request_id.empty()) {
    VF_ASSIGN_OR_RETURN(auto receipt, Receipt(request_id, WriteReceipt::Kind::kDelete, fingerprint));
    if (receipt.has_value()) return replay(*receipt);
  }
  VF_ASSIGN_OR_RETURN(std::shared_ptr<Collection> collection, FindMutable(name));
  VF_RETURN_IF_ERROR(collection->Get(identity_id).status());
  const WriteReceipt receipt{WriteReceipt::Kind::kDelete, fingerprint, {}, 0, NowUnixMs()};
  absl::StatusOr<int64_t> deleted = store_->DeleteIdentity(name, identity_id, request_id, receipt);
  if (absl::IsAlreadyExists(deleted.status()) && !request_id.empty()) {
    VF_ASSIGN_OR_RETURN(auto earlier, Receipt(request_id, WriteReceipt::Kind::kDelete, fingerprint));
    if (earlier.has_value()) return replay(*earlier);
  }
  // NOT_FOUND from a shared store: another replica deleted it first; memory follows the store.
  if (deleted.ok() || absl::IsNotFound(deleted.status())) (void)collection->Remove(identity_id);
  if (!deleted.ok()) return deleted.status();
  NoteWrite();
  return DeleteOutcome{name, *deleted, false};
}

absl::StatusOr<GallerySummary> Gallery::CreateGallery(const std::string& name, int64_t max_templates) {
  if (name.empty()) return absl::InvalidArgumentError("gallery name is empty");
  VF_RETURN_IF_ERROR(CheckGalleryName(name, "gallery name"));
  if (max_templates < 0 || max_templates > limits_.max_templates) {
    return absl::InvalidArgumentError(absl::StrCat("max_templates ", max_templates, " is not in [0, ",
                                                   limits_.max_templates,
                                                   "] (0: the deployment's gallery.max_templates)"));
  }
  std::lock_guard<std::mutex> write(write_mutex_);
  if (FindMutable(name).ok()) return absl::AlreadyExistsError(absl::StrCat("gallery ", Quote(name), " exists"));
  if (gallery_count() >= limits_.max_galleries) {
    return absl::ResourceExhaustedError(
        absl::StrCat("there are ", gallery_count(), " galleries; the limit is ", limits_.max_galleries));
  }
  const GalleryRecord record{name, NowUnixMs(), max_templates};
  const absl::Status created = store_->CreateGallery(record);
  if (absl::IsAlreadyExists(created)) {
    return absl::AlreadyExistsError(absl::StrCat("gallery ", Quote(name), " exists (made by another replica)"));
  }
  VF_RETURN_IF_ERROR(created);
  auto collection = NewCollection(record);
  const GallerySummary summary{record, 0, 0, collection->max_templates(), collection->index_info(), 0};
  std::unique_lock<std::shared_mutex> lock(map_mutex_);
  collections_[name] = std::move(collection);
  return summary;
}

absl::StatusOr<GallerySummary> Gallery::DeleteGallery(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("gallery name is empty");
  VF_RETURN_IF_ERROR(CheckGalleryName(name, "gallery name"));
  if (name == kDefaultGalleryName) {
    return absl::FailedPreconditionError(
        "the default gallery cannot be deleted (requests that name no gallery use it); delete its identities "
        "instead");
  }
  std::lock_guard<std::mutex> write(write_mutex_);
  VF_ASSIGN_OR_RETURN(std::shared_ptr<Collection> collection, FindMutable(name));
  GallerySummary summary{collection->record(),        collection->identity_count(), collection->template_count(),
                         collection->max_templates(), collection->index_info(),     collection->index_memory_bytes()};
  absl::StatusOr<int64_t> deleted = store_->DeleteGallery(name);
  if (!deleted.ok() && !absl::IsNotFound(deleted.status())) return deleted.status();
  {
    std::unique_lock<std::shared_mutex> lock(map_mutex_);
    collections_.erase(name);
  }
  if (!deleted.ok()) return deleted.status();
  summary.templates = *deleted;
  return summary;
}

absl::StatusOr<SyncReport> Gallery::Sync() {
  SyncReport report;
  if (!store_->shared()) return report;
  std::lock_guard<std::mutex> write(write_mutex_);
  VF_ASSIGN_OR_RETURN(ChangeSet changes, store_->ChangesSince(cursor_));
  report.lag_seconds = std::move(changes.lag_seconds);
  if (changes.full_reload && changes.snapshot.has_value()) {
    report.full_reload = true;
    changes.snapshot->cursor = changes.cursor;
    VF_RETURN_IF_ERROR(LoadAll(*std::move(changes.snapshot)));
    return report;
  }
  // Galleries first: an identity change may belong to a gallery created in the same round.
  for (ChangeSet::GalleryChange& g : changes.galleries) {
    ++report.changes;
    if (g.contents.has_value()) {
      VF_ASSIGN_OR_RETURN(std::shared_ptr<Collection> collection, Build(*std::move(g.contents)));
      std::unique_lock<std::shared_mutex> lock(map_mutex_);
      collections_[g.name] = std::move(collection);
    } else if (g.name != kDefaultGalleryName) {
      std::unique_lock<std::shared_mutex> lock(map_mutex_);
      collections_.erase(g.name);
    }
  }
  for (ChangeSet::IdentityChange& change : changes.identities) {
    ++report.changes;
    absl::StatusOr<std::shared_ptr<Collection>> collection = FindMutable(change.gallery);
    if (!collection.ok()) continue;  // the gallery is gone; its identities went with it
    if (change.state.has_value()) {
      VF_RETURN_IF_ERROR(CheckStored(change.gallery, *change.state));
      (void)(*collection)->Put(*std::move(change.state));
    } else {
      (void)(*collection)->Remove(change.identity_id);
    }
  }
  cursor_ = std::move(changes.cursor);
  return report;
}

absl::Status Gallery::WaitForChange(std::chrono::milliseconds timeout) { return store_->WaitForChange(timeout); }

absl::Status Gallery::CheckIdentityId(const std::string& id, const std::string& field) const {
  return ValidateId(field, id, limits_.max_id_length);
}

absl::Status Gallery::CheckGalleryName(const std::string& name, const std::string& field) const {
  if (name.empty()) return absl::OkStatus();
  return ValidateGalleryName(field, name, limits_.max_gallery_name_length);
}

// Summed over the collections directly: ListGalleries also measures every index, which a faiss index
// answers by walking itself, and these run after every write.
int64_t Gallery::identity_count() const {
  int64_t n = 0;
  for (const auto& c : Collections()) n += c->identity_count();
  return n;
}

int64_t Gallery::template_count() const {
  int64_t n = 0;
  for (const auto& c : Collections()) n += c->template_count();
  return n;
}

int64_t Gallery::gallery_count() const {
  std::shared_lock<std::shared_mutex> lock(map_mutex_);
  return static_cast<int64_t>(collections_.size());
}

}  // namespace veriface
