<?php
/**
 * A person's KYC standing, asked from the bridge and cached briefly; fails closed.
 *
 * @package KycBridge
 */

namespace KycBridge;

use WP_Error;

defined( 'ABSPATH' ) || exit;

/**
 * Lookups by email (and user type), and the "is verified" check built on them.
 */
final class Kyc_Lookup {

	/**
	 * Seconds an error is remembered, so a bridge outage does not slow every page down.
	 */
	const ERROR_TTL = 15;

	/**
	 * Transient name for one lookup.
	 *
	 * @param string $email     Email.
	 * @param string $user_type User type or ''.
	 * @return string
	 */
	public static function cache_key( $email, $user_type ) {
		return 'kycb_kyc_' . md5( strtolower( trim( $email ) ) . '|' . $user_type );
	}

	/**
	 * The bridge's answer for an email: {email, status, user_type, level, decided_at}, or an error.
	 *
	 * @param string $email     Email.
	 * @param string $user_type User type, or '' for the best standing of any type.
	 * @return array|WP_Error
	 */
	public static function lookup( $email, $user_type = '' ) {
		if ( ! is_email( $email ) ) {
			return new WP_Error( 'kycb_no_email', __( 'This account has no valid email address.', 'kyc-bridge' ) );
		}
		$key    = self::cache_key( $email, $user_type );
		$cached = get_transient( $key );
		if ( is_array( $cached ) ) {
			if ( isset( $cached['error_code'] ) ) {
				return new WP_Error( $cached['error_code'], $cached['error_message'] );
			}
			return $cached;
		}
		$answer = Bridge_Client::from_settings()->kyc_status( $email, $user_type );
		if ( is_wp_error( $answer ) ) {
			set_transient(
				$key,
				array(
					'error_code'    => $answer->get_error_code(),
					'error_message' => $answer->get_error_message(),
				),
				self::ERROR_TTL
			);
			return $answer;
		}
		/**
		 * Seconds a bridge answer is cached.
		 *
		 * @param int $seconds Default 60.
		 */
		$ttl = (int) apply_filters( 'kycb_cache_ttl', MINUTE_IN_SECONDS );
		if ( $ttl > 0 ) {
			set_transient( $key, $answer, $ttl );
		}
		return $answer;
	}

	/**
	 * Fill the cache for several emails with one bridge call per hundred (the Users screen).
	 * Emails already cached are not asked again; on an error nothing is cached and each row
	 * falls back to its own lookup.
	 *
	 * @param string[] $emails Email addresses.
	 * @return int How many answers were cached.
	 */
	public static function prefetch( $emails ) {
		$ttl = (int) apply_filters( 'kycb_cache_ttl', MINUTE_IN_SECONDS ); // phpcs:ignore WordPress.NamingConventions.ValidHookName -- documented in lookup().
		if ( $ttl <= 0 ) {
			return 0;
		}
		$wanted = array();
		foreach ( $emails as $email ) {
			if ( is_email( $email ) && false === get_transient( self::cache_key( $email, '' ) ) ) {
				$wanted[ strtolower( trim( $email ) ) ] = true;
			}
		}
		$cached = 0;
		foreach ( array_chunk( array_keys( $wanted ), 100 ) as $chunk ) {
			$answer = Bridge_Client::from_settings()->kyc_statuses( $chunk );
			if ( is_wp_error( $answer ) || ! isset( $answer['items'] ) || ! is_array( $answer['items'] ) ) {
				continue;
			}
			foreach ( $answer['items'] as $item ) {
				if ( is_array( $item ) && isset( $item['email'], $item['status'] ) ) {
					set_transient( self::cache_key( (string) $item['email'], '' ), $item, $ttl );
					++$cached;
				}
			}
		}
		return $cached;
	}

	/**
	 * Forget cached answers for an email (after a new session, an erasure).
	 *
	 * @param string $email Email.
	 */
	public static function forget( $email ) {
		delete_transient( self::cache_key( $email, '' ) );
		foreach ( Settings::USER_TYPES as $type ) {
			delete_transient( self::cache_key( $email, $type ) );
		}
	}

	/**
	 * The bridge's answer for a WordPress user.
	 *
	 * @param int    $user_id   User id.
	 * @param string $user_type User type or ''.
	 * @return array|WP_Error
	 */
	public static function for_user( $user_id, $user_type = '' ) {
		$user = get_userdata( (int) $user_id );
		if ( ! $user ) {
			return new WP_Error( 'kycb_no_user', __( 'No such user.', 'kyc-bridge' ) );
		}
		return self::lookup( $user->user_email, $user_type );
	}

	/**
	 * Whether the bridge reports the user as verified as asked; false on any error.
	 *
	 * @param int   $user_id User id (0: nobody).
	 * @param array $args    {status: default approved, type: user type, level: minimum level}.
	 * @return bool
	 */
	public static function is_verified( $user_id, $args = array() ) {
		$args     = Status::gate_args( $args );
		$verified = false;
		$answer   = null;
		if ( $user_id > 0 ) {
			$answer   = self::for_user( $user_id, $args['type'] );
			$verified = ! is_wp_error( $answer ) && Status::passes( $answer, $args );
		}
		/**
		 * The outcome of a KYC check, for sites that adjust it.
		 *
		 * @param bool                $verified Whether the bridge reports the user as verified.
		 * @param int                 $user_id  User id.
		 * @param array               $args     Normalised {status, type, level}.
		 * @param array|WP_Error|null $answer   The bridge's answer (null without a user).
		 */
		return (bool) apply_filters( 'kycb_verification_result', $verified, (int) $user_id, $args, $answer );
	}

	/**
	 * Callback of the `kycb_user_is_verified` filter: apply_filters( 'kycb_user_is_verified', false, $user_id, $args ).
	 *
	 * @param bool  $verified Ignored default.
	 * @param int   $user_id  User id.
	 * @param array $args     Gate arguments.
	 * @return bool
	 */
	public static function filter_is_verified( $verified, $user_id = 0, $args = array() ) {
		unset( $verified );
		return self::is_verified( (int) $user_id, is_array( $args ) ? $args : array() );
	}
}
