################################################################################
# General
################################################################################

variable "name" {
  description = <<-EOT
    Name of the cluster and prefix of everything else this module creates.
    Lower-case letters, digits and hyphens, starting with a letter, at most
    32 characters (IAM role name prefixes derived from it are capped at 38).
  EOT
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.name))
    error_message = "name must be 1-32 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Tags merged into every AWS resource this module creates."
  type        = map(string)
  default     = {}
}

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "IPv4 CIDR of the new VPC; a /16 to /20 leaves room for pods (VPC CNI)."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition = (
      can(cidrhost(var.vpc_cidr, 0))
      && tonumber(split("/", var.vpc_cidr)[1]) >= 16
      && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    )
    error_message = "vpc_cidr must be an IPv4 CIDR with a prefix length from /16 to /20."
  }
}

variable "az_count" {
  description = "Availability zones to spread subnets and nodes over (2 or 3)."
  type        = number
  default     = 2

  validation {
    condition     = contains([2, 3], var.az_count)
    error_message = "az_count must be 2 or 3: EKS needs subnets in at least two zones."
  }
}

variable "single_nat_gateway" {
  description = <<-EOT
    One NAT gateway for all private subnets (cheaper, but a zone outage cuts
    egress) instead of one per zone.
  EOT
  type        = bool
  default     = true
}

################################################################################
# Cluster
################################################################################

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version, for example \"1.34\"."
  type        = string
  default     = "1.34"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.34 (major.minor, no patch)."
  }
}

variable "endpoint_public_access" {
  description = "Whether the Kubernetes API endpoint is reachable from the internet."
  type        = bool
  default     = true
}

variable "endpoint_public_access_cidrs" {
  description = <<-EOT
    IPv4 CIDRs allowed to reach the public API endpoint. Narrow this to your
    office or VPN range; the default admits any address.
  EOT
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition = (
      length(var.endpoint_public_access_cidrs) > 0
      && alltrue([for c in var.endpoint_public_access_cidrs : can(cidrhost(c, 0))])
    )
    error_message = "endpoint_public_access_cidrs must be a non-empty list of IPv4 CIDRs."
  }
}

################################################################################
# Node group
################################################################################

variable "node_instance_types" {
  description = "EC2 instance types of the managed node group, in order of preference."
  type        = list(string)
  default     = ["t3.large"]

  validation {
    condition = (
      length(var.node_instance_types) > 0
      && alltrue([for t in var.node_instance_types : can(regex("^[a-z0-9-]+\\.[a-z0-9]+$", t))])
    )
    error_message = "node_instance_types must list at least one instance type such as t3.large."
  }
}

variable "node_capacity_type" {
  description = "ON_DEMAND, or SPOT for cheaper nodes that AWS may reclaim at two minutes' notice."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "node_min_size" {
  description = "Fewest nodes in the managed node group."
  type        = number
  default     = 1

  validation {
    condition     = var.node_min_size >= 0 && floor(var.node_min_size) == var.node_min_size
    error_message = "node_min_size must be a whole number of 0 or more."
  }
}

variable "node_max_size" {
  description = "Most nodes in the managed node group."
  type        = number
  default     = 3

  validation {
    condition     = var.node_max_size >= 1 && var.node_max_size >= var.node_min_size
    error_message = "node_max_size must be at least 1 and at least node_min_size."
  }
}

variable "node_desired_size" {
  description = <<-EOT
    Nodes at creation. EKS ignores later changes to it through this module;
    resize with the cluster autoscaler or the console instead.
  EOT
  type        = number
  default     = 2

  validation {
    condition = (
      var.node_desired_size >= var.node_min_size
      && var.node_desired_size <= var.node_max_size
    )
    error_message = "node_desired_size must lie between node_min_size and node_max_size."
  }
}

variable "node_disk_size_gb" {
  description = "Root volume size of each node, in GiB."
  type        = number
  default     = 40

  validation {
    condition     = var.node_disk_size_gb >= 20 && var.node_disk_size_gb <= 1000
    error_message = "node_disk_size_gb must be between 20 and 1000."
  }
}

################################################################################
# Image registry
################################################################################

variable "create_ecr_repository" {
  description = "Create an ECR repository for the hello-platform image."
  type        = bool
  default     = true
}

variable "ecr_force_delete" {
  description = "Let terraform destroy delete the ECR repository even when it still holds images."
  type        = bool
  default     = false
}
